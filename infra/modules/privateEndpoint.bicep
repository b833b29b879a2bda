@description('Name of the private endpoint.')
param name string

@description('Azure region.')
param location string

@description('Subnet that hosts private endpoints.')
param subnetId string

@description('Resource the endpoint connects to.')
param targetId string

@description('Sub-resource (group id), e.g. blob, vault, postgresqlServer, redisEnterprise, account.')
param groupId string

@description('Private DNS zone that resolves the target privately.')
param dnsZoneId string

resource endpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: name
  location: location
  properties: {
    subnet: { id: subnetId }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: targetId
          groupIds: [ groupId ]
        }
      }
    ]
  }
}

resource dnsGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: groupId
        properties: { privateDnsZoneId: dnsZoneId }
      }
    ]
  }
}
